"""The training harness: MNIST (and transfer tasks) through one Config and one train()."""
