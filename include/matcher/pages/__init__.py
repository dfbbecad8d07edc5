"""What people read: the Matcher page and the run summary, rendered from what the stages stored."""
