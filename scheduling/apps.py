from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "scheduling"
    verbose_name = "Scheduling"

    def ready(self):
        from practice import hooks
        from scheduling import demo, services

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
