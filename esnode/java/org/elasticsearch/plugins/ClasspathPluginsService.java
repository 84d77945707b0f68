package org.elasticsearch.plugins;

import org.elasticsearch.Version;
import org.elasticsearch.common.settings.Settings;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

/**
 * A PluginsService whose plugins are classes already on the classpath.
 *
 * The stock service only loads plugins from bundle directories under
 * path.home/plugins and path.home/modules, which Maven Central does not ship.
 * This lives in org.elasticsearch.plugins because the constructor of
 * LoadedPlugin, loadPlugin and loadExtensions are package-private
 * (checked against Elasticsearch 9.5.3 with javap).
 */
public final class ClasspathPluginsService extends PluginsService {
    private final List<LoadedPlugin> loaded;

    public ClasspathPluginsService(Settings settings, PluginsLoader loader, Collection<Class<? extends Plugin>> pluginClasses) {
        super(settings, null, loader);
        loaded = new ArrayList<>(pluginClasses.size());
        ClassLoader classLoader = ClasspathPluginsService.class.getClassLoader();
        for (Class<? extends Plugin> pluginClass : pluginClasses) {
            Plugin plugin = loadPlugin(pluginClass, settings, null);
            PluginDescriptor descriptor = new PluginDescriptor(
                pluginClass.getName(),
                "classpath plugin started by brandpulse esnode",
                Version.CURRENT.toString(),
                Version.CURRENT.toString(),
                Integer.toString(Runtime.version().feature()),
                pluginClass.getName(),
                null,
                List.of(),
                false,
                false,
                false,
                false,
                PluginDescriptor.DeploymentTarget.ALL
            );
            loaded.add(new LoadedPlugin(descriptor, plugin, classLoader));
        }
        loadExtensions(loaded);
    }

    @Override
    protected List<LoadedPlugin> plugins() {
        return loaded;
    }
}
