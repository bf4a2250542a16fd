"""What a study's tables say, in words: the replication report of one study (`replication`, with the audit's
section from `audit_section`), and the summary of every study's report for the README (`summary`)."""
