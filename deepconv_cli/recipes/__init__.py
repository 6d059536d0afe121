"""Recipe chains: named stages (data, train, fine-tune, evaluate, export) run in order, resumably."""
