"""The permission bits of a vehicle key (contracts/libraries/Permissions.sol, DESIGN.md §3.1).
A key is a mask of the key bits; a product's terms may also require HISTORY, which no key carries."""

from __future__ import annotations

#: Send the lock command.
LOCK = 1 << 0
#: Send the unlock command.
UNLOCK = 1 << 1
#: Remote start / use as driver; also held by the ERC-4907 user.
DRIVE = 1 << 2
#: Read non-location signals, current and history.
TELEMETRY = 1 << 3
#: Read location, current and history.
LOCATION = 1 << 4
#: Receive the live stream.
LIVE = 1 << 5
#: Read the VIN credential.
VIN = 1 << 6
#: Grant and revoke keys holding at most the holder's own bits, never MANAGE_KEYS itself.
MANAGE_KEYS = 1 << 7

#: Product terms only (never a key bit): the buyer may read the current owner's data from
#: before the vehicle joined the product, never a previous owner's.
HISTORY = 1 << 8

#: Every key bit: what the owner holds.
ALL = LOCK | UNLOCK | DRIVE | TELEMETRY | LOCATION | LIVE | VIN | MANAGE_KEYS
#: What an ERC-4907 user holds until its expiry.
USER = LOCK | UNLOCK | DRIVE
#: The bits a MANAGE_KEYS holder may pass on (when it holds them).
DELEGABLE = ALL & ~MANAGE_KEYS
#: Every bit a product's terms may require: the key bits and HISTORY.
TERMS = ALL | HISTORY
