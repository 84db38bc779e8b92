# Shortcuts for people who have make; each one just runs course.py.
# Extra arguments: make test ARGS="-k saga"   or   make lab ARGS="--no-browser"
PYTHON ?= python3
ARGS ?=

.PHONY: lab test notebooks setup clean

lab:
	$(PYTHON) course.py lab $(ARGS)

test:
	$(PYTHON) course.py test $(ARGS)

# Re-execute the notebooks in place (commit them executed): make notebooks [ARGS=notebooks/01_*.ipynb]
notebooks:
	$(PYTHON) course.py notebooks $(ARGS)

setup:
	$(PYTHON) course.py setup

clean:
	$(PYTHON) course.py clean
