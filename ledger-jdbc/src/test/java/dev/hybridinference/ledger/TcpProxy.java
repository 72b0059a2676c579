package dev.hybridinference.ledger;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * A loopback TCP proxy between a JDBC driver and its database server, to take the database away in the
 * middle of a run and give it back:
 *
 * <ul>
 *   <li>{@link #cut()} resets every open connection and refuses new ones (accepted, then reset at once), as a
 *       crashed server or a dropped network looks to the driver; {@link #restore()} lets connections through
 *       again.
 *   <li>{@link #pause()} holds every byte in either direction, as a hung server looks: the driver's reads
 *       wait. {@link #awaitHeld()} waits until some bytes are held, which shows the driver is waiting on the
 *       server; {@link #resume()} lets them through, nothing lost.
 * </ul>
 */
final class TcpProxy implements AutoCloseable {
    private final ServerSocket server;
    private final InetSocketAddress target;
    private final Set<Socket> sockets = ConcurrentHashMap.newKeySet();
    private final Object gate = new Object();
    private volatile boolean cut;
    private boolean paused; // guarded by gate
    private int held; // guarded by gate: pumps holding bytes at the gate

    TcpProxy(InetSocketAddress target) throws IOException {
        this.target = target;
        this.server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        Thread accept = new Thread(this::acceptLoop, "tcp-proxy-accept-" + server.getLocalPort());
        accept.setDaemon(true);
        accept.start();
    }

    /** The port the driver connects to. */
    int port() {
        return server.getLocalPort();
    }

    /** Resets every connection and refuses new ones until {@link #restore()}. */
    void cut() {
        cut = true;
        for (Socket s : sockets) {
            reset(s);
        }
    }

    /** Lets connections through again. */
    void restore() {
        cut = false;
    }

    /** Holds every byte, in both directions, until {@link #resume()}. */
    void pause() {
        synchronized (gate) {
            paused = true;
        }
    }

    /** Lets the held bytes through. */
    void resume() {
        synchronized (gate) {
            paused = false;
            gate.notifyAll();
        }
    }

    /** Waits (at most 10 s) until some bytes are held at the gate. */
    boolean awaitHeld() throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        synchronized (gate) {
            while (held == 0) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                TimeUnit.NANOSECONDS.timedWait(gate, left);
            }
            return true;
        }
    }

    /** Whether bytes are held at the gate now. */
    boolean holding() {
        synchronized (gate) {
            return held > 0;
        }
    }

    @Override
    public void close() throws IOException {
        cut();
        resume();
        server.close();
    }

    private void acceptLoop() {
        while (!server.isClosed()) {
            Socket client;
            try {
                client = server.accept();
            } catch (IOException e) {
                return; // closed
            }
            if (cut) {
                reset(client);
                continue;
            }
            Socket upstream = new Socket();
            try {
                upstream.connect(target, 2_000);
                // Without it, Nagle's algorithm and delayed acknowledgements hold each small write ~40 ms.
                upstream.setTcpNoDelay(true);
                client.setTcpNoDelay(true);
            } catch (IOException e) {
                reset(client);
                closeQuietly(upstream);
                continue;
            }
            sockets.add(client);
            sockets.add(upstream);
            pump(client, upstream);
            pump(upstream, client);
        }
    }

    private void pump(Socket from, Socket to) {
        Thread t = new Thread(
                () -> {
                    byte[] buf = new byte[16 * 1024];
                    try (InputStream in = from.getInputStream();
                            OutputStream out = to.getOutputStream()) {
                        for (int n = in.read(buf); n >= 0; n = in.read(buf)) {
                            passGate();
                            if (cut) {
                                break;
                            }
                            out.write(buf, 0, n);
                            out.flush();
                        }
                    } catch (IOException | InterruptedException e) {
                        // the connection ended, or was cut
                    } finally {
                        reset(from);
                        reset(to);
                    }
                },
                "tcp-proxy-pump");
        t.setDaemon(true);
        t.start();
    }

    private void passGate() throws InterruptedException {
        synchronized (gate) {
            if (!paused) {
                return;
            }
            held++;
            gate.notifyAll();
            try {
                while (paused) {
                    gate.wait();
                }
            } finally {
                held--;
            }
        }
    }

    /** Closes a socket with a reset rather than an orderly end, as a dead server's network looks. */
    private void reset(Socket s) {
        sockets.remove(s);
        try {
            s.setSoLinger(true, 0);
        } catch (IOException e) {
            // already closed
        }
        closeQuietly(s);
    }

    private static void closeQuietly(Socket s) {
        try {
            s.close();
        } catch (IOException e) {
            // nothing to do
        }
    }
}
