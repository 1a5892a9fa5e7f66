"""Vehicle signals: the VSS catalogue with each signal's permission class (`catalogue`) and
the one store every producer writes and every reader reads through (`store`)."""
