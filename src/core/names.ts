/** A message ID or data key (LAVA MultiNode): letters, digits, `_`, `.` and `-`. No imports: the lava-* commands load it. */
export const MSG_NAME = /^[A-Za-z0-9_.-]+$/;
