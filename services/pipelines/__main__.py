"""``python -m services.pipelines [migrate]``."""

from services.pipelines.app import DEFINITION
from shared_kernel.service import main

main(DEFINITION)
