/* The one error idiom: (errno, "syscall `path`: strerror") in a fixed-size struct. */
#include "mc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
mc_error_set (struct mc_error *err, int errnum, const char *fmt, ...)
{
  /* strerrordesc_np: no locale, no allocation, safe in a cloned child. */
  const char *desc = errnum != 0 ? strerrordesc_np (errnum) : NULL;
  size_t used;
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (err->msg, sizeof err->msg, fmt, ap);
  va_end (ap);
  used = strlen (err->msg);
  if (desc != NULL)
    snprintf (err->msg + used, sizeof err->msg - used, ": %s", desc);
  else if (errnum != 0)
    snprintf (err->msg + used, sizeof err->msg - used, ": error %d", errnum);
  err->errnum = errnum;
  errno = errnum;
  return -1;
}

void
mc_cleanup_fdp (int *fdp)
{
  int saved = errno;

  if (*fdp >= 0)
    close (*fdp);
  errno = saved;
}

void
mc_cleanup_freep (void *p)
{
  free (*(void **) p);
}
