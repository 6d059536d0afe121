"""Training: the LightningModule of section 3.1, the callbacks Lightning lacks, batch planning across devices."""
