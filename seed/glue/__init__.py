"""The top floor: Locust's hooks, the one owner of a run's life per process (Seeder), the uploading user,
the progress line and the web UI."""
