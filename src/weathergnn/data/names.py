"""Name maps from ECMWF / CDS / CF conventions onto the canonical (WeatherBench2) names."""

from __future__ import annotations

#: ECMWF short names (cfgrib and CDS NetCDF spellings) -> WeatherBench2 names.
VARIABLE_NAMES: dict[str, str] = {
    "z": "geopotential",
    "t": "temperature",
    "u": "u_component_of_wind",
    "v": "v_component_of_wind",
    "q": "specific_humidity",
    "w": "vertical_velocity",
    "r": "relative_humidity",
    "vo": "vorticity",
    "d": "divergence",
    "ciwc": "specific_cloud_ice_water_content",
    "clwc": "specific_cloud_liquid_water_content",
    "t2m": "2m_temperature",
    "2t": "2m_temperature",
    "d2m": "2m_dewpoint_temperature",
    "2d": "2m_dewpoint_temperature",
    "u10": "10m_u_component_of_wind",
    "10u": "10m_u_component_of_wind",
    "v10": "10m_v_component_of_wind",
    "10v": "10m_v_component_of_wind",
    "msl": "mean_sea_level_pressure",
    "sp": "surface_pressure",
    "tcwv": "total_column_water_vapour",
    "tp": "total_precipitation_6hr",
    "lsm": "land_sea_mask",
    "orog": "geopotential_at_surface",
    "sst": "sea_surface_temperature",
    "siconc": "sea_ice_cover",
    "ci": "sea_ice_cover",
    "skt": "skin_temperature",
    "sdor": "standard_deviation_of_orography",
    "slor": "slope_of_sub_gridscale_orography",
    "anor": "angle_of_sub_gridscale_orography",
    "isor": "anisotropy_of_sub_gridscale_orography",
    "slt": "soil_type",
}

#: Variables that do not change in time: stored with dims (latitude, longitude).
STATIC_VARIABLES: frozenset[str] = frozenset(
    {
        "geopotential_at_surface",
        "land_sea_mask",
        "standard_deviation_of_orography",
        "slope_of_sub_gridscale_orography",
        "angle_of_sub_gridscale_orography",
        "anisotropy_of_sub_gridscale_orography",
        "soil_type",
    }
)

#: Pressure-level dim / coordinate names -> "level".
LEVEL_NAMES: tuple[str, ...] = ("level", "isobaricInhPa", "pressure_level", "plev", "lev")
#: Ensemble dim names -> "member".
MEMBER_NAMES: tuple[str, ...] = ("member", "number", "realization", "ensemble_member")
LATITUDE_NAMES: tuple[str, ...] = ("latitude", "lat")
LONGITUDE_NAMES: tuple[str, ...] = ("longitude", "lon")

#: The dims of the canonical layout, in order.
CANONICAL_DIMS: tuple[str, ...] = ("member", "time", "level", "latitude", "longitude")


def canonical_variable_name(name: str) -> str:
    """WeatherBench2 name for an ECMWF short name; other names are returned unchanged."""
    return VARIABLE_NAMES.get(name, name)
