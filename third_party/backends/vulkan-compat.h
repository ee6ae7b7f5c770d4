// Force-included into the ggml-vulkan sources by CMakeLists.txt (our own shim, not part
// of ggml).
//
// ggml-vulkan.cpp builds its VkInstance with a VK_EXT_layer_settings struct that asks the
// Khronos validation layer (when installed) for best-practice checks. Those types exist
// only in Vulkan headers 1.3.261 and newer; Debian 12 ships 1.3.239. With such headers
// this file declares stand-ins under the same names. The stand-in settings struct chains
// nothing: taking its address gives a null pNext, so the instance is created exactly as
// without the extension and only the optional best-practice request is lost.
// With newer headers (VK_EXT_layer_settings defined) this file declares nothing.
#pragma once

#include <vulkan/vulkan_core.h>

#ifndef VK_EXT_layer_settings
#include <cstdint>

namespace vk {

enum class LayerSettingTypeEXT : int32_t {
    eBool32 = 0,
    eInt32 = 1,
    eInt64 = 2,
    eUint32 = 3,
    eUint64 = 4,
    eFloat32 = 5,
    eFloat64 = 6,
    eString = 7,
};

struct LayerSettingEXT {
    const char *pLayerName;
    const char *pSettingName;
    LayerSettingTypeEXT type;
    uint32_t valueCount;
    const void *pValues;
};

struct LayerSettingsCreateInfoEXT {
    template <typename Settings>
    explicit LayerSettingsCreateInfoEXT(const Settings &) {}

    // Used only as "&info" for an InstanceCreateInfo's pNext: an empty chain.
    const void *operator&() const { return nullptr; }
};

}  // namespace vk
#endif
