"""The Radicale configuration the bench and the tests start: plain htpasswd users,
each owning only their own collections, no delay after a wrong password."""

from pathlib import Path


def radicale_config(
    folder: Path, *, port: int, users: dict[str, str], storage: Path
) -> Path:
    """Write the users file and the config into ``folder``; returns the config."""
    users_file = folder / "users"
    users_file.write_text("".join(f"{u}:{p}\n" for u, p in users.items()))
    config = folder / "config"
    config.write_text(
        "[server]\n"
        f"hosts = 127.0.0.1:{port}\n"
        "[auth]\n"
        "type = htpasswd\n"
        f"htpasswd_filename = {users_file}\n"
        "htpasswd_encryption = plain\n"
        "delay = 0\n"
        "[rights]\n"
        "type = owner_only\n"
        "[storage]\n"
        f"filesystem_folder = {storage}\n"
        "[logging]\n"
        "level = warning\n"
    )
    return config
