"""The probe's defaults, apart from the heavy modules so that the CLI's parser can name them."""

DEFAULT_STEPS = 50  # probe training steps on a copy of the model
DEFAULT_BATCH = 128  # examples per probe step when the data does not say
