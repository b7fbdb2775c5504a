from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "scheduling"
    verbose_name = "Scheduling"

    def ready(self):
        from practice import hooks
        from scheduling import demo, selectors, services

        def republish(sender, user, **kwargs):
            services.appointments_republish_for_clinician(clinician=user)

        def seed(sender, riverside, harbor, **kwargs):
            demo.seed_scheduling(riverside=riverside, harbor=harbor)

        hooks.user_label_changed.connect(
            republish, weak=False, dispatch_uid="scheduling-republish"
        )
        hooks.demo_practices_seeded.connect(
            seed, weak=False, dispatch_uid="scheduling-demo"
        )

        def describe(sender, practice, patient_ids, **kwargs):
            return selectors.audit_patients_described(
                practice=practice, patient_ids=patient_ids
            )

        def match(sender, practice, text, limit, **kwargs):
            return selectors.audit_patients_matching(
                practice=practice, text=text, limit=limit
            )

        hooks.audit_patients_described.connect(
            describe, weak=False, dispatch_uid="scheduling-audit-patients"
        )
        hooks.audit_patients_matching.connect(
            match, weak=False, dispatch_uid="scheduling-audit-match"
        )
