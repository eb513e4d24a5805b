package main

import "net"

// Addresses on this machine: where make run's services listen, and whether
// an address keeps a service to this machine alone.

// loopback says whether addr (host:port) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && loopbackHost(host)
}

// loopbackHost says whether host names this machine's loopback interface.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// localURL is the http URL of a service listening on addr (HTTP_ADDR, or
// fallback when empty), as reached from this machine.
func localURL(addr, fallback string) string {
	if addr == "" {
		addr = fallback
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
