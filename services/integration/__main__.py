"""python -m services.integration --role api|worker|all"""

from kit.runtime import main
from services.integration.app import SPEC

if __name__ == "__main__":
    main(SPEC)
