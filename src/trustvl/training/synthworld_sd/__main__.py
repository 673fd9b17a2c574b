"""``python -m trustvl.training.synthworld_sd --output_dir DIR [--bf16] ...``."""

from trustvl.training.synthworld_sd.train import main

if __name__ == "__main__":
    main()
