#!/usr/bin/python3
"""Runs a command in a pseudo-terminal and types ANSWER whenever it prints a password prompt.

The openstack CLI's --password-prompt reads from a terminal with getpass, which flushes any
input typed before the prompt, so the password must be sent after the prompt appears.
Usage: answer-prompts.py ANSWER command args...   (exit status is the command's)
"""
import os, pty, sys, re

answer = sys.argv[1].encode() + b"\n"
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
buf = b""
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    buf += chunk
    # Prompts: "User Password:", "Repeat User Password:"
    while re.search(rb"Password:\s*$", buf):
        os.write(fd, answer)
        buf = b""
    sys.stdout.buffer.write(chunk)
    sys.stdout.flush()
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
