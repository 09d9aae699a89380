/* minictr-init: the tiny PID 1 of `run --init` (tini's role, Docker's docker-init).
 *
 *     minictr-init -- COMMAND [ARG...]
 *
 * A command run as PID 1 gets no default signal actions (SIGTERM does nothing
 * unless it installs a handler) and inherits every orphan of the container.
 * This init runs COMMAND as its child, passes on every signal it gets, reaps
 * whatever exits, and leaves with the child's status (128+N for signal N).
 *
 * It is bind-mounted into containers whose images may have no libc at all,
 * so it is linked statically and uses nothing from libc that needs NSS.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* Signals an init must not pass on: the child's own job-control and fault signals. */
static bool
is_forwarded (int signum)
{
  switch (signum)
    {
    case SIGCHLD:
    case SIGFPE:
    case SIGILL:
    case SIGSEGV:
    case SIGBUS:
    case SIGABRT:
    case SIGTRAP:
    case SIGSYS:
    case SIGTTIN:
    case SIGTTOU:
      return false;
    default:
      return true;
    }
}

static int
exit_status_of (int status)
{
  return WIFSIGNALED (status) ? 128 + WTERMSIG (status) : WEXITSTATUS (status);
}

static pid_t
spawn (char **argv, const sigset_t *old_mask)
{
  pid_t pid = fork ();

  if (pid != 0)
    return pid;
  /* The child gets back the signal dispositions and mask a process expects. */
  sigprocmask (SIG_SETMASK, old_mask, NULL);
  /* Its own process group, in the foreground of the terminal if there is one,
   * so that Ctrl-C on a TTY reaches it. */
  setpgid (0, 0);
  if (isatty (STDIN_FILENO))
    {
      signal (SIGTTOU, SIG_IGN);
      tcsetpgrp (STDIN_FILENO, getpid ());
      signal (SIGTTOU, SIG_DFL);
    }
  execvp (argv[0], argv);
  fprintf (stderr, "minictr-init: exec `%s`: %s\n", argv[0], strerror (errno));
  _exit (errno == ENOENT ? 127 : 126);
}

/* Reap every child that has exited; returns true once CHILD is among them. */
static bool
reap (pid_t child, int *child_status)
{
  bool child_done = false;
  int status;
  pid_t pid;

  while ((pid = waitpid (-1, &status, WNOHANG)) > 0)
    if (pid == child)
      {
        *child_status = status;
        child_done = true;
      }
  return child_done;
}

int
main (int argc, char **argv)
{
  sigset_t all, old_mask;
  int first = 1, child_status = 0;

  if (argc > 1 && strcmp (argv[1], "--") == 0)
    first = 2;
  if (first >= argc)
    {
      fprintf (stderr, "usage: %s -- COMMAND [ARG...]\n", argv[0]);
      return 2;
    }
  sigfillset (&all);
  sigprocmask (SIG_SETMASK, &all, &old_mask);
  prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); /* when not PID 1 (a test), still reap orphans */

  pid_t child = spawn (argv + first, &old_mask);
  if (child < 0)
    {
      fprintf (stderr, "minictr-init: fork: %s\n", strerror (errno));
      return 1;
    }
  for (;;)
    {
      siginfo_t info;
      int signum = sigwaitinfo (&all, &info);

      if (signum < 0)
        continue; /* EINTR */
      if (signum == SIGCHLD)
        {
          if (reap (child, &child_status))
            return exit_status_of (child_status);
        }
      else if (is_forwarded (signum))
        kill (child, signum);
    }
}
