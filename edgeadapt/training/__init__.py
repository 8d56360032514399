"""Training on the workstation: soft prompt, adapters (through peft), losses, the two stages."""
