"""Scheduled jobs (reminders, digests, introductions) on APScheduler — see issue "jobs"."""
