"""A sample egress log: one polite crawler and two impolite ones, as Squid logs them (logformat abusedesk).

Clients are in the test inventory's 198.51.100.0/27 (service svc_acme_mx); the target is 203.0.113.7, whose
robots.txt disallows /private/ with a Crawl-delay of 1 s.
"""

from __future__ import annotations

T0 = 1_780_272_000.0  # 2026-06-01T00:00Z, inside the inventory's allocation
TARGET = "203.0.113.7"
ROBOTS = b"User-agent: *\nCrawl-delay: 1\nDisallow: /private/\n\nUser-agent: badbot\nDisallow: /\n"
POLITE, RUDE, MIRROR = "198.51.100.10", "198.51.100.11", "198.51.100.12"
POLITE_UA = "ExampleBot/1.0 (+https://crawler.example/bot; bot@crawler.example)"
RUDE_UA = "python-requests/2.31.0"
MIRROR_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


def line(t: float, client: str, path: str, ua: str, status: int = 200) -> str:
    return (f"{t:.3f}     12 {client} TCP_MISS/{status} 512 GET http://{TARGET}{path} - HIER_DIRECT/{TARGET} "
            f'text/html "{ua}"')  # fmt: skip


def squid_log() -> bytes:
    lines = [line(T0, POLITE, "/robots.txt", POLITE_UA)]
    lines += [line(T0 + 1.5 * (i + 1), POLITE, f"/page/{i}", POLITE_UA) for i in range(40)]
    # rude: no robots.txt, /private/ pages, ten requests a second
    lines += [line(T0 + 0.1 * i, RUDE, f"/private/{i}" if i % 5 == 0 else f"/page/{i}", RUDE_UA) for i in range(60)]
    # a browser string copying the site: robots.txt read, /private/ left alone, but 3 requests a second, 80 pages
    lines.append(line(T0, MIRROR, "/robots.txt", MIRROR_UA))
    lines += [line(T0 + 1 + 0.3 * i, MIRROR, f"/site/{i}.html" if i % 2 else f"/static/{i}.css", MIRROR_UA)
              for i in range(80)]  # fmt: skip
    lines.sort(key=lambda x: float(x.split()[0]))
    return ("\n".join(lines) + "\n").encode()
