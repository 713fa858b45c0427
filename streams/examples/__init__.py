"""Example bots: `echo` and `faq`. Name one in a bots file's `handler` key."""
