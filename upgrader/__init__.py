"""wems-upgrade: moves a Wareflow EMS installation to the newest release, all or nothing."""

__version__ = "0.1.0"
