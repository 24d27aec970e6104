# synth fragment
