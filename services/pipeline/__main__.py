"""python -m services.pipeline --role api|worker|all"""

from kit.runtime import main
from services.pipeline.app import SPEC

if __name__ == "__main__":
    main(SPEC)
