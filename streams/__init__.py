"""Streams: the Faust worker that turns `updates` into replies — deduped, stateful, in chat order."""
