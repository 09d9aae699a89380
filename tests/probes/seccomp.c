/* Seccomp probe, run inside a container: each argument names one syscall to
 * try; it prints `NAME ok` or `NAME errno N`, one line each. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif

/* A child made by clone or clone3 exits at once; the parent reaps it. */
static long
reap (long pid)
{
  if (pid == 0)
    _exit (0);
  if (pid > 0)
    waitpid ((pid_t) pid, NULL, 0);
  return pid < 0 ? -1 : 0;
}

static long
try (const char *name)
{
  char c = '\n';

  if (strcmp (name, "unshare_user") == 0)
    return unshare (CLONE_NEWUSER);
  if (strcmp (name, "clone_newns") == 0)
    return reap (syscall (SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0));
  if (strcmp (name, "clone_plain") == 0)
    return reap (syscall (SYS_clone, SIGCHLD, 0, 0, 0, 0));
  if (strcmp (name, "clone3") == 0)
    {
      struct clone_args args = { .exit_signal = SIGCHLD };
      return reap (syscall (SYS_clone3, &args, sizeof args));
    }
  if (strcmp (name, "socket_alg") == 0)
    return socket (AF_ALG, SOCK_SEQPACKET, 0);
  if (strcmp (name, "socket_vsock") == 0)
    return socket (AF_VSOCK, SOCK_STREAM, 0);
  if (strcmp (name, "socket_inet") == 0)
    return socket (AF_INET, SOCK_STREAM, 0);
  if (strcmp (name, "socket_unix") == 0)
    return socket (AF_UNIX, SOCK_STREAM, 0);
  if (strcmp (name, "personality_no_randomize") == 0)
    return personality (ADDR_NO_RANDOMIZE) == -1 ? -1 : 0;
  if (strcmp (name, "personality_query") == 0)
    return personality (0xffffffff) == -1 ? -1 : 0;
  if (strcmp (name, "keyctl") == 0)
    return syscall (SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 1);
  if (strcmp (name, "add_key") == 0)
    return syscall (SYS_add_key, "user", "probe", "x", 1, -2 /* process keyring */);
  if (strcmp (name, "tiocsti") == 0)
    return ioctl (0, TIOCSTI, &c);
  if (strcmp (name, "tiocsti_high") == 0) /* the kernel reads cmd as 32 bits */
    return syscall (SYS_ioctl, 0, (1UL << 32) | TIOCSTI, &c);
  if (strcmp (name, "tiocgwinsz") == 0)
    {
      struct winsize ws;
      return ioctl (0, TIOCGWINSZ, &ws);
    }
  if (strcmp (name, "mkdir") == 0)
    return mkdir ("/probe-dir", 0755);
  errno = EINVAL;
  return -1;
}

int
main (int argc, char **argv)
{
  for (int i = 1; i < argc; i++)
    {
      errno = 0;
      if (try (argv[i]) < 0)
        printf ("%s errno %d\n", argv[i], errno);
      else
        printf ("%s ok\n", argv[i]);
    }
  return 0;
}
