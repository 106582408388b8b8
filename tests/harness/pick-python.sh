#!/bin/sh
# Print the Python interpreter the integration tests use: the first of
# $DTH_TEST_PYTHON, python3 on PATH, /usr/bin/python3 that can import boto3.
# Exit 1 (printing nothing) when none can.
for py in ${DTH_TEST_PYTHON:-} "$(command -v python3 2>/dev/null)" /usr/bin/python3; do
	[ -n "$py" ] && [ -x "$py" ] || continue
	if "$py" -c 'import boto3' >/dev/null 2>&1; then
		"$py" -c 'import sys; print(sys.executable)'
		exit 0
	fi
done
exit 1
