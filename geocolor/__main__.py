"""``python -m geocolor`` (and ``torchrun -m geocolor ...``)."""
from geocolor.cli import main

if __name__ == "__main__":
    main()
