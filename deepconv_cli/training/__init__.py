"""Training: the LightningModule of section 3.1, the callbacks Lightning lacks, batch planning across devices, and
the run lifecycle every training command shares (run.py: run directory, lock, resume, threads, device, fit)."""
