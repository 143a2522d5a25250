"""The device farm: devices as Ray custom resources, sweep cells as Ray tasks.

Each module has one job: `resources` (names), `node` (starting and stopping this host's Ray node),
`cluster` (connecting, and what the farm holds now), `artifacts` (shipping by content hash),
`measure` (the one adapter between a farm node and the harness), `board` (a sweep's public state),
`submit` (a sweep on the farm, committed one result at a time), `commands` (`bench farm`).
"""
