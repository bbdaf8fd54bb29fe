"""The synthetic family-court world (``fjo synth``) and the end-to-end demo (``fjo demo``)."""
