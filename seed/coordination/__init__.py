"""One run on the coordinating process: its settings and checks, everything checked before it starts
(the plan), its state (Run), the read-back, the backlog bound, the coordinator that hands out work, and
the tally that tells an ended run as a Summary. No Locust object is held here."""
