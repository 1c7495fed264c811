"""python -m services.knowledge --role api|worker|all"""

from kit.runtime import main
from services.knowledge.app import SPEC

if __name__ == "__main__":
    main(SPEC)
