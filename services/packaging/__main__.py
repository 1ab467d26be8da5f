"""``python -m services.packaging [migrate]``."""

from services.packaging.app import DEFINITION
from shared_kernel.service import main

main(DEFINITION)
