"""Moved: preparing training data is torch-free and lives in :mod:`monalisa.prepare`.

Kept so that ``monalisa.models.prepare`` imports keep working.
"""
from monalisa.prepare import *  # noqa: F401,F403
from monalisa.prepare import CLIP_FILES, FORMAT, MARGIN, VERSION  # noqa: F401
