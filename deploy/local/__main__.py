"""`make run`: the whole platform on one machine, embedded defaults, demo tenant seeded."""

from deploy.local.launcher import main

if __name__ == "__main__":
    main()
