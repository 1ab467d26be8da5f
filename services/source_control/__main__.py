"""``python -m services.source_control [migrate]``."""

from services.source_control.app import DEFINITION
from shared_kernel.service import main

main(DEFINITION)
