"""Evidence: the exchange store, collected pages, the run folder and its lock, the manifest, verify and prune."""
