"""python -m services.notify --role api|worker|all"""

from kit.runtime import main
from services.notify.app import SPEC

if __name__ == "__main__":
    main(SPEC)
