"""The pure floor: the data set, the queue of work, retries, proof by content, stage times, the ledger's
fold, the summary and its words. No HTTP, no Locust: unit-tested on their own."""
