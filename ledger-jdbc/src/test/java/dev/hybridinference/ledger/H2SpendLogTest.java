package dev.hybridinference.ledger;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.sql.SQLException;
import org.h2.tools.Server;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;

/**
 * The spend log on H2: the embedded default (a database file, no server) for most tests, and an H2 server on
 * loopback for those that put a proxy between the driver and the database.
 */
class H2SpendLogTest extends SpendLogContract {
    @TempDir
    static Path databases;

    private static Server h2;

    @BeforeAll
    static void startServer() throws SQLException {
        h2 = Server.createTcpServer("-tcpPort", "0", "-baseDir", databases.toString(), "-ifNotExists")
                .start();
    }

    @AfterAll
    static void stopServer() {
        h2.stop();
    }

    @Override
    String url() {
        return "jdbc:h2:file:" + databases.resolve("embedded");
    }

    @Override
    InetSocketAddress server() {
        return new InetSocketAddress(InetAddress.getLoopbackAddress(), h2.getPort());
    }

    @Override
    String urlThrough(int port) {
        return "jdbc:h2:tcp://127.0.0.1:" + port + "/served";
    }

    @Override
    String serverUrl() {
        return urlThrough(h2.getPort());
    }
}
