"""Training side (torch): the few-shot talking-head networks of Zakharov et al. 2019, their
losses, episode data, meta-learning and fine-tuning."""
