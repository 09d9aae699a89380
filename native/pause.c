/* minictr-pause: holds the rootless daemon's user, mount and network
 * namespaces (the role of Podman's pause process).
 *
 * The rootless daemon runs inside namespaces of its own; its containers'
 * namespaces are children of those.  If they died with the daemon, a restarted
 * daemon would find its running containers in namespaces it has no power over
 * (no setns for exec, no signal to their other users).  This process keeps them
 * alive; each daemon joins them (mc_userns_join) and the last one to stop with
 * no container left sends SIGTERM here.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int
main (void)
{
  sigset_t all;
  int null = open ("/dev/null", O_RDWR);

  /* Nothing of the daemon's terminal or pipes is kept open: a caller that reads
   * the daemon's output to its end must not wait for us. */
  for (int fd = 0; fd < 3 && null >= 0; fd++)
    dup2 (null, fd);
  if (null > 2)
    close (null);
  setsid ();
  if (chdir ("/") < 0)
    return 1;
  prctl (PR_SET_NAME, "minictr:[ns]", 0, 0, 0);
  sigfillset (&all);
  sigprocmask (SIG_SETMASK, &all, NULL);
  for (;;)
    {
      int signum = sigwaitinfo (&all, NULL);
      if (signum == SIGTERM)
        return 0;
      if (signum == SIGCHLD)
        while (waitpid (-1, NULL, WNOHANG) > 0)
          ;
    }
}
