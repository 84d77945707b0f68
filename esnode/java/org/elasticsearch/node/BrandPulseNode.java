package org.elasticsearch.node;

import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.plugins.ClasspathPluginsService;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.PluginsLoader;
import org.elasticsearch.plugins.PluginsService;
import org.elasticsearch.transport.netty4.Netty4Plugin;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Single-node Elasticsearch started from the Maven Central jars.
 *
 * Lives in org.elasticsearch.node because NodeConstruction.prepareConstruction,
 * NodeServiceProvider and the Node(NodeConstruction) constructor are
 * package-private. Started and stopped by the Python module `esnode`.
 *
 * Usage: BrandPulseNode --home DIR --http-port N [--transport-port RANGE] [--parent-pid PID] [-E key=value]...
 */
public final class BrandPulseNode extends Node {
    private static final List<Class<? extends Plugin>> PLUGINS = List.of(Netty4Plugin.class);

    private BrandPulseNode(Settings settings) {
        super(NodeConstruction.prepareConstruction(
            new Environment(settings, null),
            PluginsLoader.createPluginsLoader(Collections.emptySet(), Collections.emptySet(), Collections.emptyMap(), false),
            new NodeServiceProvider() {
                @Override
                PluginsService newPluginService(Environment environment, PluginsLoader pluginsLoader) {
                    return new ClasspathPluginsService(environment.settings(), pluginsLoader, PLUGINS);
                }
            },
            true
        ));
    }

    public static void main(String[] args) throws Exception {
        String home = null;
        String httpPort = null;
        String transportPort = "9300-9400";
        long parentPid = -1;
        Map<String, String> extra = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String value = i + 1 < args.length ? args[i + 1] : null;
            switch (args[i]) {
                case "--home" -> { home = value; i++; }
                case "--http-port" -> { httpPort = value; i++; }
                case "--transport-port" -> { transportPort = value; i++; }
                case "--parent-pid" -> { parentPid = Long.parseLong(value); i++; }
                case "-E" -> {
                    int eq = value == null ? -1 : value.indexOf('=');
                    if (eq <= 0) {
                        throw new IllegalArgumentException("-E needs key=value, got: " + value);
                    }
                    extra.put(value.substring(0, eq), value.substring(eq + 1));
                    i++;
                }
                default -> throw new IllegalArgumentException("unknown argument: " + args[i]);
            }
        }
        if (home == null || httpPort == null) {
            throw new IllegalArgumentException("usage: BrandPulseNode --home DIR --http-port N [--transport-port RANGE] [--parent-pid PID] [-E key=value]...");
        }
        Path homePath = Path.of(home).toAbsolutePath();
        Files.createDirectories(homePath.resolve("data"));
        Files.createDirectories(homePath.resolve("logs"));

        Settings.Builder builder = Settings.builder()
            .put("node.name", "brandpulse-local")
            .put("cluster.name", "brandpulse-local")
            .put("path.home", homePath.toString())
            .put("path.data", homePath.resolve("data").toString())
            .put("path.logs", homePath.resolve("logs").toString())
            .put("network.host", "127.0.0.1")
            .put("http.port", httpPort)
            .put("transport.port", transportPort)
            .put("discovery.type", "single-node")
            // tmp dirs and CI disks are often >90% full; the watermark would block writes
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            // INFO, not log4j's default ERROR: the log is what explains a failed boot
            .put("logger.level", "INFO");
        // -E last, so a caller can override any default above
        extra.forEach(builder::put);
        Settings settings = builder.build();

        // log4j to stdout; the Python side redirects stdout into <data>/node.log
        LogConfigurator.configureWithoutConfig(settings);
        LogConfigurator.setNodeName("brandpulse-local");
        LogConfigurator.setClusterName("brandpulse-local");

        BrandPulseNode node = new BrandPulseNode(settings);
        CountDownLatch closed = new CountDownLatch(1);
        // SIGTERM from `esnode stop` runs this: close flushes and releases the
        // data dir lock so the next start on the same dir recovers cleanly
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                closed.countDown();
            }
        }, "brandpulse-esnode-shutdown"));

        node.start();
        System.out.println("[brandpulse-esnode] started http=127.0.0.1:" + httpPort);
        System.out.flush();

        if (parentPid > 0) {
            // a test session that dies without cleanup must not leave a JVM behind
            final long watched = parentPid;
            Thread watchdog = new Thread(() -> {
                while (true) {
                    boolean alive = ProcessHandle.of(watched).map(ProcessHandle::isAlive).orElse(false);
                    if (!alive) {
                        System.out.println("[brandpulse-esnode] parent " + watched + " exited; shutting down");
                        System.exit(0);
                    }
                    try {
                        Thread.sleep(1000);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            }, "brandpulse-esnode-parent-watchdog");
            watchdog.setDaemon(true);
            watchdog.start();
        }
        closed.await();
    }
}
