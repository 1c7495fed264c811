"""python -m services.leads --role api|worker|all"""

from kit.runtime import main
from services.leads.app import SPEC

if __name__ == "__main__":
    main(SPEC)
