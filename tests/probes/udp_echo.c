/* A UDP echo server for test_ports.py (busybox's nc here has no -u): answers each
 * datagram on 0.0.0.0:PORT with "echo:" and the datagram. usage: udp_echo PORT */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int
main (int argc, char **argv)
{
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_ANY) };
  char buf[2048] = "echo:";
  int fd;

  if (argc != 2)
    return 2;
  addr.sin_port = htons (atoi (argv[1]));
  fd = socket (AF_INET, SOCK_DGRAM, 0);
  if (fd < 0 || bind (fd, (struct sockaddr *) &addr, sizeof addr) < 0)
    {
      perror ("udp_echo: bind");
      return 1;
    }
  for (;;)
    {
      struct sockaddr_in peer;
      socklen_t len = sizeof peer;
      ssize_t n = recvfrom (fd, buf + 5, sizeof buf - 5, 0, (struct sockaddr *) &peer, &len);
      if (n < 0)
        continue;
      sendto (fd, buf, n + 5, 0, (struct sockaddr *) &peer, len);
    }
}
